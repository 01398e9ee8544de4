"""An ATProto OAuth web app and its worker sharing one session store (see the OAuth guide)."""
