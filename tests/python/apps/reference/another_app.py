# The reference's cross-app call through `modal run` (`skiff run another_app.py`).
import skiff as modal

app = modal.App()


@app.function()
def cube(x):
    square = modal.Function.lookup("my-shared-app", "square")
    return x * square.remote(x)


@app.local_entrypoint()
def main():
    assert cube.remote(42) == 74088
    print("cube(42) =", cube.remote(42))
