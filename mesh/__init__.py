"""The runtime every GaitPay service stands on: config, mTLS, errors, validation,
telemetry and the grpc.aio server bootstrap. It knows nothing of any one service."""
