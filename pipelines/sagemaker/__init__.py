"""Pravah on SageMaker: what runs a compiled pipeline's definition without AWS (the emulator), and the
stand-ins for the framework images it runs the containers' contract in."""
