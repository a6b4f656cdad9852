# The reference's Flask front end of the job queue: submits jobs with spawn and polls them with
# FunctionCall.from_id(...).get(timeout=0).
from flask import Flask, request

import skiff as modal

web_app = Flask(__name__)


@web_app.route("/submit", methods=["POST"])
def submit_job():
    data = request.get_json()
    process_job = modal.Function.from_name("job-queue", "train_model")
    call = process_job.spawn(data["data"], data.get("seconds", 2.0))
    return {"call_id": call.object_id}


@web_app.route("/result/<call_id>")
def get_job_result(call_id):
    function_call = modal.FunctionCall.from_id(call_id)
    try:
        result = function_call.get(timeout=0)
    except modal.exception.OutputExpiredError:
        return {"result": "expired"}, 404
    except TimeoutError:
        return {"result": None}, 202
    return {"result": result}
