import sys

from forgetbench.cli import main

sys.exit(main())
