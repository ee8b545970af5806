"""Realistic sample FEST/M30 deliveries: a full delivery of any size and its 14-day follow-ups.

Everything is synthetic but shaped like DMP's fest251.xml: real ATC codes and Volven code
systems, Norwegian names, consistent Ref* links, and the XSD's element order.
"""

from grunndata.sample.followup import derive_followup
from grunndata.sample.generate import generate_delivery

__all__ = ["derive_followup", "generate_delivery"]
