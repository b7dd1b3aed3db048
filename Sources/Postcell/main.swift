import ControlPlane
print("postcell")
