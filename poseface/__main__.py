import sys

from poseface.cli import main

sys.exit(main())
