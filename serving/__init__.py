"""kyodo serving: BentoML service, tenancy, metering, feedback, pages; ONNX only."""
