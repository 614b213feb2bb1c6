"""The AWS services we speak, described by botocore's own service models.

A :class:`ServiceSpec` bundles a botocore ``ServiceModel`` with the few facts the models do
not say: how the service reports validation errors and missing parameters.  Codecs look
operations and shapes up here; nothing else loads models.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import botocore.session
from botocore.model import OperationModel, ServiceModel


@dataclass(eq=False)
class ServiceSpec:
    name: str                      # botocore name: cloudwatch, logs, sns
    model: ServiceModel
    # shape (or code) used for the coral "N validation errors detected" message
    validation_error: str
    # how a missing required member is reported: "missing" (CloudWatch's MissingParameter,
    # query-style path) or "validation" (coral "Value null at 'x' … must not be null")
    missing_style: str
    _ops: dict = field(default_factory=dict)

    @property
    def target_prefix(self) -> str | None:
        return self.model.metadata.get("targetPrefix")

    @property
    def api_version(self) -> str:
        return self.model.metadata["apiVersion"]

    @property
    def xml_namespace(self) -> str | None:
        return self.model.metadata.get("xmlNamespace")

    @property
    def signing_name(self) -> str:
        return self.model.metadata.get("signingName") or self.model.metadata["endpointPrefix"]

    @property
    def query_compatible(self) -> bool:
        return "awsQueryCompatible" in self.model.metadata

    @property
    def json_version(self) -> str:
        return self.model.metadata.get("jsonVersion", "1.0")

    @cached_property
    def service_namespace(self) -> str:
        """The Smithy namespace used in JSON/CBOR ``__type`` values."""
        return {"cloudwatch": "com.amazonaws.cloudwatch", "logs": "com.amazonaws.logs",
                "sns": "com.amazonaws.sns"}.get(self.name, f"com.amazonaws.{self.name}")

    def operation(self, name: str) -> OperationModel | None:
        op = self._ops.get(name)
        if op is None and name in self.model.operation_names:
            op = self._ops[name] = self.model.operation_model(name)
        return op

    @cached_property
    def error_shapes(self) -> dict:
        return {s.name: s for s in self.model.error_shapes}

    def error_info(self, code: str) -> tuple[str, int, bool] | None:
        """(query code, HTTP status, sender fault) for a modeled error shape."""
        shape = self.error_shapes.get(code)
        if shape is None:
            return None
        meta = shape.metadata.get("error", {})
        return (meta.get("code", code), meta.get("httpStatusCode", 400),
                meta.get("senderFault", True))


@lru_cache(maxsize=None)
def _model(name: str) -> ServiceModel:
    return botocore.session.get_session().get_service_model(name)


@lru_cache(maxsize=None)
def service(name: str) -> ServiceSpec:
    if name == "cloudwatch":
        return ServiceSpec("cloudwatch", _model("cloudwatch"), "ValidationException", "missing")
    if name == "logs":
        return ServiceSpec("logs", _model("logs"), "InvalidParameterException", "validation")
    if name == "sns":
        return ServiceSpec("sns", _model("sns"), "InvalidParameterException", "missing")
    raise KeyError(name)


def by_target_prefix(prefix: str) -> ServiceSpec | None:
    for name in ("cloudwatch", "logs"):
        spec = service(name)
        if spec.target_prefix == prefix:
            return spec
    return None


def by_query_version(version: str | None, signing_service: str | None) -> ServiceSpec | None:
    """Pick the query-protocol service: the Version parameter, then the credential scope."""
    candidates = [service("cloudwatch"), service("sns")]
    for spec in candidates:
        if version and spec.api_version == version:
            return spec
    for spec in candidates:
        if signing_service and spec.signing_name == signing_service:
            return spec
    return None
