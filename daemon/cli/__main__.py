import sys

from postdesk.daemon.cli.main import main

sys.exit(main())
