# The reference's job queue: the backend app (`skiff deploy job_queue.py`).
import time

import skiff as modal

app = modal.App("job-queue")


@app.function()
def train_model(data, seconds=2.0):
    time.sleep(seconds)
    return {"trained_on": data, "accuracy": 0.95}
