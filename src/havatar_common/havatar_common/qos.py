"""QoS profiles shared by the nodes (sensor streams use rclpy's ``qos_profile_sensor_data``)."""
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, QoSReliabilityPolicy

# status and info topics: the last message is kept for late subscribers (like tf_static)
LATCHED = QoSProfile(depth=1, reliability=QoSReliabilityPolicy.RELIABLE,
                     durability=QoSDurabilityPolicy.TRANSIENT_LOCAL)
