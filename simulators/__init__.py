"""Simulated gateways and devices of a whole city; they reach citytel only over MQTT."""

from simulators.city import CHICAGO, SimDevice, SimGateway, build_city
from simulators.gateway import GatewaySimulator
from simulators.run import Simulation, SimulationStats

__all__ = [
    "CHICAGO",
    "GatewaySimulator",
    "SimDevice",
    "SimGateway",
    "Simulation",
    "SimulationStats",
    "build_city",
]
