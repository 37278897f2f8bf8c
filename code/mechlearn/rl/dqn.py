"""(being written) mechlearn.rl.dqn."""

__all__: list[str] = []
