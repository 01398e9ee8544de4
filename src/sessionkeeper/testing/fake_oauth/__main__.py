"""``python -m sessionkeeper.testing.fake_oauth``: serve a fake OAuth server until stopped."""

from sessionkeeper.testing.fake_oauth._cli import main

raise SystemExit(main())
