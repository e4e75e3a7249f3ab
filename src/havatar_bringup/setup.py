from setuptools import find_packages, setup

package_name = 'havatar_bringup'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        ('share/' + package_name + '/launch', ['launch/robot.launch.py', 'launch/sim.launch.py']),
        ('share/' + package_name + '/config', ['config/robot.yaml', 'config/fastdds_shm.xml']),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='Havatar developers',
    maintainer_email='dev@havatar.invalid',
    description='Launch files, parameters and the Fast DDS profile that start the whole Havatar robot.',
    license='Apache-2.0',
    extras_require={'test': ['pytest']},
    entry_points={
        'console_scripts': [
            'demo = havatar_bringup.demo:main',
            'run_robot = havatar_bringup.run_robot:main',
            'topic_table = havatar_bringup.topic_table:main',
            'incident_recorder = havatar_bringup.incident_recorder:main',
            'robot_container = havatar_bringup.container:main',
        ],
    },
)
