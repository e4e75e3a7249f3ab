from setuptools import find_packages, setup

package_name = 'havatar_common'

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
    description='What every Havatar node shares (no node logic).',
    license='Apache-2.0',
    extras_require={'test': ['pytest']},
)
