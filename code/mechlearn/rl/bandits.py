"""(being written) mechlearn.rl.bandits."""

__all__: list[str] = []
