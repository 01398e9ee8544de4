"""``python -m sessionkeeper.testing.fake_pds``: serve a fake PDS until SIGTERM/SIGINT."""

from sessionkeeper.testing.fake_pds._cli import main

raise SystemExit(main())
