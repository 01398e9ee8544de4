"""The example app's HTML: a sign-in page, a home page, an error page (all text escaped)."""

from __future__ import annotations

from html import escape
from typing import Any

_LAYOUT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; color: #1d2433; }}
header {{ display: flex; justify-content: space-between; align-items: baseline; }}
.card {{ border: 1px solid #d0d7e2; border-radius: .5rem; padding: 1rem; margin: 1rem 0; }}
input, textarea {{ font: inherit; width: 100%; box-sizing: border-box; margin: .3rem 0; }}
button {{ font: inherit; padding: .3rem 1rem; }}
.muted {{ color: #5b6477; font-size: .9rem; }}
.error {{ border-color: #d33; background: #fff5f5; }}
</style></head>
<body><header><h1>{title}</h1><span class="muted">sessionkeeper example</span></header>
{body}</body></html>"""


def page(title: str, body: str) -> str:
    """A whole page around ``body`` (HTML already escaped)."""
    return _LAYOUT.format(title=escape(title), body=body)


def sign_in_page() -> str:
    """The page of a browser that is not signed in."""
    return page(
        "Sign in",
        """<form class="card" method="post" action="/login">
<label for="handle">Your handle</label>
<input id="handle" name="handle" placeholder="alice.bsky.social" autocomplete="username" required>
<button type="submit">Sign in</button>
</form>
<p class="muted">You sign in on your own server's pages; this app never sees your password.</p>""",
    )


def home_page(profile: dict[str, Any], posts: list[dict[str, Any]]) -> str:
    """The signed-in home page: who, a post form, recent posts, sign out."""
    items = "".join(
        f"<li>{escape(str(p.get('value', {}).get('text', '')))} "
        f'<span class="muted">{escape(str(p.get("value", {}).get("createdAt", "")))}</span></li>'
        for p in posts
    )
    return page(
        f"Signed in as {profile.get('handle', '')}",
        f"""<div class="card"><strong>{escape(str(profile.get("handle", "")))}</strong>
<div class="muted">{escape(str(profile.get("did", "")))}</div>
<div class="muted">PDS {escape(str(profile.get("pds", "")))}</div></div>
<form class="card" method="post" action="/post">
<label for="text">Post something</label>
<textarea id="text" name="text" rows="3" maxlength="300" required></textarea>
<button type="submit">Post</button>
</form>
<div class="card"><h2>Recent posts</h2><ul id="posts">{items or "<li>none yet</li>"}</ul></div>
<form method="post" action="/logout"><button type="submit">Sign out</button></form>""",
    )


def error_page(title: str, message: str) -> str:
    """A sign-in or call error, said in words, with a way back."""
    return page(
        title,
        f"""<div class="card error"><p>{escape(message)}</p></div>
<p><a href="/">Back to the start</a></p>""",
    )
