"""A test plugin for the Ray executor: a model that kills its own process once, fails to start once, or
burns CPU per sample. Markers are files (``O_EXCL``), so "once" holds across the actors of a run."""

from __future__ import annotations

import hashlib
import os
import signal
import time

from dfabench import hookimpl
from dfabench.errors import DfabenchError
from dfabench.models import ConstantModel, Response


def _first(path: str) -> bool:
    """True for the one caller that creates ``path``."""
    if not path:
        return False
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        return True
    except FileExistsError:
        return False


class CrashModel(ConstantModel):
    """``crash_flag``: the first replica to reach its second batch kills its process (SIGKILL);
    ``fail_start_flag``: the first replica to start fails (as if its weights were missing), or every replica
    when ``fail_start_flag=always``; ``work``: iterations of a CPU-bound loop per sample; ``log``: a file
    that gets one line per batch (the sample ids), written before the answers are returned."""

    operational_args = ("crash_flag", "fail_start_flag", "work", "log")

    def __init__(self, crash_flag: str = "", fail_start_flag: str = "", work: int | str = 0, log: str = "",
                 **kwargs):
        super().__init__(**kwargs)
        if fail_start_flag == "always" or _first(fail_start_flag):
            raise DfabenchError("crash model: cannot load the weights (test)")
        self.crash_flag, self.work, self.log = crash_flag, int(work), log
        self.calls = 0

    def generate(self, requests):
        self.calls += 1
        if self.calls == 2 and _first(self.crash_flag):
            time.sleep(0.3)  # let the previous batch's reply leave the process (a kill at once may take it along)
            os.kill(os.getpid(), signal.SIGKILL)
        total = 0
        for _ in range(self.work * len(requests)):
            total += 1
        if self.log:
            with open(self.log, "a") as handle:
                handle.write(" ".join(r.sample_id for r in requests) + "\n")
        out = []
        for request in requests:  # an answer that depends on the sample: runs are compared sample by sample
            odd = hashlib.sha256(request.sample_id.encode()).digest()[0] % 2
            if request.reference == "label":
                out.append(Response(text="Yes, this face is fake." if odd else "No, it is a real face."))
            else:
                out.append(Response(text=("face swap" if odd else "face editing") + f" {total % 1}"))
        return out


@hookimpl
def dfabench_register_models(register):
    register("crash", "dfabench_testray:CrashModel", capabilities=("generate",),
             description="test: kills its process once, fails to start once, burns CPU (Ray executor tests)")
