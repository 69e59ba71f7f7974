"""The child a cluster job starts: `python -m gan_bench.suite.worker SPEC` (under torchrun for several
processes), which trains, resumes or evaluates one run folder through the suite's execute(), exactly as
a --jobs child does, and leaves its (status, reason) where the job reads it. SPEC is the JSON a
ClusterJob writes (cluster_job.py): the config, the run folder, the action, the evaluation, and that
outcome file. Nothing imports this module: it is only ever run.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Optional

from gan_bench.config import build_config
from gan_bench.errors import Interrupted
from gan_bench.run import RunFolder
from gan_bench.run.files import write_json
from gan_bench.suite.executor import EXIT_STATUS, execute_job
from gan_bench.suite.file import SuiteEval
from gan_bench.suite.plan import Job

EXIT_CODE = {v: k for k, v in EXIT_STATUS.items()}


def main(argv: Optional[list[str]] = None) -> int:
    """Run the job SPEC describes; the exit status is a --jobs child's (0 completed, 3, 4)."""
    spec = json.loads((argv if argv is not None else sys.argv[1:])[0])
    main_rank = os.environ.get("RANK", "0") == "0"
    job = Job(build_config([spec["config"]]), RunFolder(spec["run"]), spec["action"])
    ev = SuiteEval(**spec["eval"]) if spec["eval"] else None
    try:
        status, reason = execute_job(job, ev)
    except Interrupted:
        status, reason = "interrupted", ""
    except Exception as e:  # noqa: BLE001  an unforeseen error: the reason goes back, the traceback to the log
        if main_rank:
            write_json(Path(spec["outcome"]), {"status": "failed", "reason": f"{type(e).__name__}: {e}"})
        raise
    if main_rank:
        write_json(Path(spec["outcome"]), {"status": status, "reason": reason})
    return EXIT_CODE[status]


if __name__ == "__main__":
    sys.exit(main())
