"""(being written) mechlearn.rl.policy_gradient."""

__all__: list[str] = []
