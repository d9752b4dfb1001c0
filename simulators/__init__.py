"""Simulated gateways and devices of a whole city; they reach citytel only over MQTT.

docs/simulators.md: the in-process generator's API, the fault kinds and the ground truth.
"""

from simulators.city import CHICAGO, CHICAGO_AREA, Area, SimDevice, SimGateway, build_city
from simulators.faults import FAULT_KINDS, Fault, read_ground_truth, write_ground_truth
from simulators.gateway import GatewayClient
from simulators.generator import CityGenerator, Message, StatusChange, generate
from simulators.run import Simulation, SimulationStats

__all__ = [
    "CHICAGO",
    "CHICAGO_AREA",
    "FAULT_KINDS",
    "Area",
    "CityGenerator",
    "Fault",
    "GatewayClient",
    "Message",
    "SimDevice",
    "SimGateway",
    "Simulation",
    "SimulationStats",
    "StatusChange",
    "build_city",
    "generate",
    "read_ground_truth",
    "write_ground_truth",
]
