"""A Python app with a secret and a volume (tests/python/test_resources.py)."""
import os

import skiff

app = skiff.App("resapp")


@app.function(secrets=[skiff.Secret.from_name("pysecret")],
              volumes={"/data": skiff.Volume.from_name("pyvol")})
def env_and_file(key, text):
    with open("/data/note.txt", "w") as f:
        f.write(text)
    return os.environ.get(key)


@app.function(volumes={"/mnt/v": skiff.Volume.from_name("pyvol")})
def read_note():
    with open("/mnt/v/note.txt") as f:
        return f.read()
