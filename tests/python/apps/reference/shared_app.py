# The reference's shared app, verbatim but for the import line.
import skiff as modal

app = modal.App("my-shared-app")


@app.function()
def square(x):
    return x ** 2


@app.cls()
class MyLifecycleClass:
    @modal.enter()
    def enter(self):
        self.var = "hello world"

    @modal.method()
    def foo(self):
        return self.var
