from setuptools import find_packages, setup

package_name = 'havatar_drivers'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='Havatar developers',
    maintainer_email='dev@havatar.invalid',
    description=('Hardware boundary of the Havatar robot: camera, microphone, speaker and '
                 'ESP32 motor nodes, and an ESP32 simulator.'),
    license='Apache-2.0',
    extras_require={'test': ['pytest']},
    entry_points={
        'console_scripts': [
            'camera_node = havatar_drivers.camera_node:main',
            'microphone_node = havatar_drivers.microphone_node:main',
            'speaker_node = havatar_drivers.speaker_node:main',
            'motor_node = havatar_drivers.motor_node:main',
            'esp32_sim = havatar_drivers.esp32.simulator:main',
            'motor_guard = havatar_drivers.esp32.guard:main',
            'twist_mux = havatar_drivers.twist_mux_node:main',
        ],
    },
)
