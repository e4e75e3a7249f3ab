from setuptools import find_packages, setup

package_name = 'havatar_streaming'

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
    description=('Media bridge of the Havatar robot: local MJPEG over HTTP, or H.264 and Opus to '
                 'a MediaMTX server, switchable at run time with automatic fallback.'),
    license='Apache-2.0',
    extras_require={'test': ['pytest']},
    entry_points={
        'console_scripts': [
            'streaming_node = havatar_streaming.streaming_node:main',
            'convert_server_config = havatar_streaming.convert_server_config:main',
        ],
    },
)
