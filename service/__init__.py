"""reportsum: faithful, structured digests of Chinese government work reports."""

__version__ = "0.1.0"
