"""A module of the test app's own directory: shipped in the bundle by `skiff deploy`."""
import dataclasses


@dataclasses.dataclass
class Point:
    x: int
    y: int


class AppError(Exception):
    """An exception type of the app, re-raised with its type in a caller that imports it."""
