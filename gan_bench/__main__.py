import os
import sys

from gan_bench.cli import main

if int(os.environ.get("RANK", "0")) > 0:  # under torchrun rank 0 speaks for the job; errors still reach stderr
    sys.stdout = open(os.devnull, "w")
sys.exit(main())
