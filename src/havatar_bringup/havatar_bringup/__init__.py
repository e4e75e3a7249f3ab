"""Launch files, parameters and the Fast DDS profile that start the whole Havatar robot."""
