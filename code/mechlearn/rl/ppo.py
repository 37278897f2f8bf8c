"""(being written) mechlearn.rl.ppo."""

__all__: list[str] = []
