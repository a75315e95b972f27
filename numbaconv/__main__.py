import sys

from numbaconv.cli import main

sys.exit(main())
