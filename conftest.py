"""Root of the test tree: load the shared Havatar fixtures for every package's tests."""
pytest_plugins = ['havatar_testing.plugin']
