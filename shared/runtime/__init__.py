"""The async runner, its resources, original threads, the clock."""
