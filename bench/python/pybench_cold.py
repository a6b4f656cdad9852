"""pybench_cold: a module that takes 100 ms to import (as one importing heavy libraries), for the
cold start of bench/bench_python.sh. first() runs in a new container each call (they stop after
1 ms idle); Snapped.start() too, but its containers are forked from a snapshot template that did
the import (and its enter(snap=True) hook) once."""
import os
import time

import skiff

time.sleep(0.1)

app = skiff.App("pybench-cold")


@app.function(scaledown_window=0.001)
def first():
    return os.getpid()


@app.cls(scaledown_window=0.001)
class Snapped:
    @skiff.enter(snap=True)
    def load(self):
        self.ready = True

    @skiff.method()
    def start(self):
        return os.getpid()
