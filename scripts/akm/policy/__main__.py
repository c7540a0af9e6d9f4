import sys

from akm.policy.cli import main

sys.exit(main(sys.argv[1:]))
