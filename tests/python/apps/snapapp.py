"""snapapp: a class with a snapshot hook whose module is slow to import (as one importing heavy
libraries): the import and enter(snap=True) run once in the template, containers fork from it."""
import os
import time

import skiff

time.sleep(0.3)  # a module that takes 300 ms to import
IMPORT_PID = os.getpid()

app = skiff.App("snapapp")


@app.cls(max_containers=4)
class Model:
    tag: str = skiff.parameter(default="a")

    @skiff.enter(snap=True)
    def load(self):
        self.weights = f"weights-{self.tag}"
        self.snap_pid = os.getpid()

    @skiff.enter()
    def start(self):
        self.pid = os.getpid()

    @skiff.method()
    def info(self, seconds=0.0):
        time.sleep(seconds)
        return {"weights": self.weights, "import_pid": IMPORT_PID, "snap_pid": self.snap_pid,
                "enter_pid": self.pid, "pid": os.getpid()}

    @skiff.method()
    async def ainfo(self):
        import asyncio
        await asyncio.sleep(0)
        return os.getpid()
