"""The client's one exception type."""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional


class CurvatureServiceError(Exception):
    """A refusal from the service (RFC 9457 problem+json), or a transport failure (status None).

    Attributes: ``status`` (HTTP status), ``title``, ``detail`` (what is wrong, in the service's
    words), ``code`` (the service's catalogue code, e.g. ``SHAPE_MISMATCH``, ``OVERLOADED``,
    ``TIMEOUT``), ``url`` and ``problem`` (the whole problem object).
    """

    def __init__(self, status: Optional[int], title: str, detail: str, code: Optional[str] = None,
                 url: Optional[str] = None, problem: Optional[Mapping[str, Any]] = None) -> None:
        self.status = status
        self.title = title
        self.detail = detail
        self.code = code
        self.url = url
        self.problem: Dict[str, Any] = dict(problem or {})
        where = f" from {url}" if url else ""
        tag = f" [{code}]" if code else ""
        super().__init__(f"{status} {title}{tag}{where}: {detail}" if status else f"{title}{where}: {detail}")
