from setuptools import find_packages, setup

package_name = 'havatar_relay'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    package_data={package_name: ['web/*']},
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='Havatar developers',
    maintainer_email='dev@havatar.invalid',
    description='Drive the Havatar robot from a browser: the robot relay node, the cloud relay server and the web UI.',
    license='Apache-2.0',
    extras_require={'test': ['pytest']},
    entry_points={
        'console_scripts': [
            'relay_node = havatar_relay.relay_node:main',
            'relay_server = havatar_relay.server.app:main',
            'foxglove_node = havatar_relay.foxglove_node:main',
        ],
    },
)
