"""``python -m sessionkeeper.testing.fake_hac``: serve a fake HAC until SIGTERM/SIGINT."""

from sessionkeeper.testing.fake_hac._cli import main

raise SystemExit(main())
