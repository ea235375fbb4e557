"""Operations: liveness, readiness and the OpenAPI document."""
