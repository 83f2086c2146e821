"""`python -m ops <command> --stack <stack>`."""

import sys

from ops.cli import main

sys.exit(main())
