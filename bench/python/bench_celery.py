"""The Celery peer of bench/bench_python.sh: echo(x) with a Redis broker and result backend
(BENCH_REDIS_URL)."""
import os

from celery import Celery

url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
app = Celery("bench_celery", broker=url, backend=url)
app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"],
                worker_prefetch_multiplier=64, broker_connection_retry_on_startup=True)


@app.task
def echo(x):
    return x
