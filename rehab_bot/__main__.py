"""Allow ``python -m rehab_bot``."""

from rehab_bot.cli import main

raise SystemExit(main())
