import sys

from attestnet.cli import main

sys.exit(main())
