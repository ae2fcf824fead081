"""Kubernetes manifests (RBAC, scheduled game days, the reaper), installed as chaos.deploy
so `chaos init` can hand them to a team."""
