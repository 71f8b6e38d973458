"""Byte access: every inspector reads through a Reader, so local, in-memory and remote bytes look alike."""

from .reader import BytesReader, FileReader, Reader, ReaderError, SliceReader

__all__ = ["BytesReader", "FileReader", "Reader", "ReaderError", "SliceReader"]
