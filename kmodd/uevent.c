/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The uevent source: a libudev monitor on the loop. */
#include "log.h"
#include "manager.h"

#define UEVENT_RCVBUF (8u * 1024 * 1024)

static int on_uevent(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	Manager *m = userdata;

	/* drain what is there, a bounded number per wakeup so that the loop stays fair */
	for (unsigned i = 0; i < 256; i++) {
		struct udev_device *d;
		const char *action, *modalias, *driver;

		errno = 0;
		d = udev_monitor_receive_device(m->monitor);
		if (!d) {
			if (errno == ENOBUFS) {
				/* the kernel dropped events: look at every device again instead */
				m->counters.enobufs++;
				log_warning("The uevent socket overflowed; rescanning all devices.");
				manager_schedule_rescan(m);
				continue;
			}
			break;
		}
		action = udev_device_get_action(d);
		modalias = udev_device_get_property_value(d, "MODALIAS");
		driver = udev_device_get_driver(d);
		if (modalias && !driver && action && (streq(action, "add") || streq(action, "change"))) {
			int r = manager_handle_modalias(m, modalias, udev_device_get_devpath(d),
							"uevent", NULL);

			if (r < 0 && r != -EINVAL)
				log_warning_errno(r, "Cannot handle the uevent of %s: %m, ignoring",
						  strna(udev_device_get_devpath(d)));
		}
		udev_device_unref(d);
	}
	return 0;
}

int manager_open_udev(Manager *m)
{
	int r;

	if (m->no_udev)
		return 0;
	m->udev = udev_new();
	if (!m->udev)
		return log_error_errno(-ENOMEM, "Cannot create a udev context: %m");
	/* "udev": events after udevd has handled them (and tried the installed modules) */
	m->monitor = udev_monitor_new_from_netlink(m->udev, "udev");
	if (!m->monitor) {
		log_warning("Cannot open the udev monitor (%m); without uevents kmodd acts on scans "
			    "and control calls only, ignoring.");
		m->udev = udev_unref(m->udev);
		return 0;
	}
	{
		/* $KMODD_UEVENT_RCVBUF: a smaller buffer, for tests that overflow it on purpose */
		const char *e = getenv("KMODD_UEVENT_RCVBUF");
		unsigned long size = e ? strtoul(e, NULL, 10) : 0;

		(void)udev_monitor_set_receive_buffer_size(m->monitor, size > 0 && size <= UEVENT_RCVBUF
										     ? (int)size
										     : (int)UEVENT_RCVBUF);
	}
	r = udev_monitor_enable_receiving(m->monitor);
	if (r < 0) {
		log_warning_errno(r, "Cannot listen to uevents: %m; kmodd acts on scans and control "
				     "calls only, ignoring.");
		m->monitor = udev_monitor_unref(m->monitor);
		m->udev = udev_unref(m->udev);
		return 0;
	}
	r = sd_event_add_io(m->event, &m->monitor_source, udev_monitor_get_fd(m->monitor), EPOLLIN,
			    on_uevent, m);
	if (r < 0)
		return log_error_errno(r, "Cannot watch the udev monitor: %m");
	(void)sd_event_source_set_description(m->monitor_source, "udev-monitor");
	return 0;
}
