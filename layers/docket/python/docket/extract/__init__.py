"""Text extraction: bytes of an uploaded file in, clean page-numbered text out.

``extract_document`` is the whole contract; it raises only ``docket.errors.ExtractionError``
subclasses, each with a message a person can act on.
"""

from docket.extract.clean import clean_text
from docket.extract.core import SUPPORTED_FORMATS, extract_document
from docket.extract.detect import Detection, detect_format

__all__ = ["SUPPORTED_FORMATS", "Detection", "clean_text", "detect_format", "extract_document"]
