"""(being written) mechlearn.rl.envs."""

__all__: list[str] = []
