import sys

from sso_proxy.cli import main

sys.exit(main())
