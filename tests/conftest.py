"""Test-wide set-up that must run before jax or tensorflow is imported."""

import os

# Four CPU devices, so sharding is tested here as on a pod (a 2x2 mesh, data
# parallel k-means). Tests that want one device take jax.devices()[:1].
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Tests never reach a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
